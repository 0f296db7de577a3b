# The fnmesh image: one image, one CLI; the Deployment picks the part (`fnmesh gateway`, `fnmesh sidecar`).
# Not built in this repository's CI (no container engine there); kept buildable with `docker build .`.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/bin ./bin
USER 65532:65532
ENTRYPOINT ["node", "/app/bin/fnmesh.js"]
CMD ["--help"]

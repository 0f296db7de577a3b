// Unit tests sit beside the code (*.test.ts); integration and end-to-end suites live in test/.
// @swc/jest strips types only; `npm run typecheck` runs tsc separately.
const transform = { '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }] };
// Packages shipped as ES modules only are compiled to CommonJS like the sources (puppeteer-core and the two
// it loads for test/browser.test.ts).
const transformIgnorePatterns = [
  '/node_modules/(?!(@kubernetes/client-node|openid-client|oauth4webapi|jose|puppeteer-core|@puppeteer/browsers|chromium-bidi)/)',
];
const common = {
  transform,
  transformIgnorePatterns,
  testEnvironment: 'node',
  modulePathIgnorePatterns: ['<rootDir>/dist/'],
};
module.exports = {
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/{common,broker,gateway,sidecar,sdk,local,cluster,cli,operator,crds}/**/*.test.ts'],
    },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/test/**/*.test.ts'], slowTestThreshold: 30 },
  ],
};

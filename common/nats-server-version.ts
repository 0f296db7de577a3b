/**
 * The nats-server release that fnmesh runs where it brings its own NATS: `scripts/nats-server-tool.sh` builds
 * this version from the Go module proxy (it reads the value from this file), `fnmesh cluster` maps the official
 * `nats` image to that binary (and refuses a `nats` image tag of another version), and the chart's NATS image
 * tag is checked against it. One definition: change it here only.
 */
export const NATS_SERVER_VERSION = '2.15.3';

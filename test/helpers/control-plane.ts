/** The tests' control plane is the one `fnmesh cluster` uses (cluster/control-plane.ts). */
export * from '../../cluster/control-plane';

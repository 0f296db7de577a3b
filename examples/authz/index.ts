/**
 * The authz example service: a policy function used by a `func` rule (greeter.welcome's rule asks
 * authz.canGreet). The gateway sends it the call's params and the caller's claims; the call is allowed
 * only when it answers {"ack": true}. Extra keys (a reason) are fine and show up in the gateway's logs.
 */
import { serve, type Context } from '../../sdk';

const BLOCKED = new Set(['mallory', 'trudy']);

export const functions = {
  canGreet: (params: unknown, ctx: Context) => {
    const name = (params as { name?: unknown } | null)?.name;
    if (typeof name !== 'string') return { ack: false, reason: 'params.name is missing' };
    if (BLOCKED.has(name.trim().toLowerCase())) return { ack: false, reason: `${name} may not be greeted` };
    return { ack: true, checkedFor: ctx.claims?.sub ?? 'anonymous' };
  },
};

if (require.main === module) {
  serve(functions).then(
    (handle) => console.log(`authz serving ${Object.keys(functions).join(', ')} on 127.0.0.1:${handle.port}`),
    (err: unknown) => {
      console.error(`authz: cannot start: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}

/**
 * The greeter example service: four functions served with the fnmesh SDK.
 * Run through the mesh with `npm start` (see greeter.yaml for each function's rule).
 */
import { FunctionError, serve, type Context } from '../../sdk';

function nameOf(params: unknown): string {
  const name = (params as { name?: unknown } | null)?.name;
  if (typeof name !== 'string' || name.trim() === '')
    throw new FunctionError(400, 'params.name must be a non-empty string, e.g. {"name": "Ada"}');
  if (name.length > 200) throw new FunctionError(400, 'params.name must be at most 200 characters');
  return name.trim();
}

export const functions = {
  /** Rule allow: anyone. */
  hello: (params: unknown) => ({ greeting: `Hello, ${nameOf(params)}!` }),

  /** Rule authenticated: the verified claims of the caller's JWT. */
  whoami: (_params: unknown, ctx: Context) => ({ claims: ctx.claims ?? null, requestId: ctx.requestId }),

  /** Function-to-function: asks the Python `text` service to upper-case the greeting. */
  shout: async (params: unknown, ctx: Context) => {
    const greeting = `Hello, ${nameOf(params)}!`;
    const upper = await ctx.call<{ text: string }>('text', 'upper', { text: greeting });
    return { greeting: upper.text, via: 'default/text.upper' };
  },

  /** Rule func: allowed only when authz.canGreet acknowledges the call. */
  welcome: (params: unknown) => ({ message: `Welcome, ${nameOf(params)}!` }),

  /** Rule and/or/match (see greeter.yaml): only admins and owners whose admin access has not expired. */
  admin: (_params: unknown, ctx: Context) => ({
    welcome: `admin ${String(ctx.claims?.sub ?? 'unknown')}`,
    role: ctx.claims?.role ?? null,
  }),
};

if (require.main === module) {
  serve(functions).then(
    (handle) => console.log(`greeter serving ${Object.keys(functions).join(', ')} on 127.0.0.1:${handle.port}`),
    (err: unknown) => {
      console.error(`greeter: cannot start: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}

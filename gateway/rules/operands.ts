/**
 * Parsing of rule operands: decides, once at compile time, whether a string operand is a variable
 * (`args.auth.sub`, `utils.exists(args.params.x)`, `utils.now()`) or a literal, and refuses strings that
 * look like a mistyped variable instead of letting them silently become literals (Space Cloud's defect).
 */
import { ARG_ROOTS, UTIL_FUNCTIONS, type ArgRoot } from '../../common/rule';

export { ARG_ROOTS, type ArgRoot };

/** A parsed operand. `path` holds the precomputed segments after the root. */
export type ParsedOperand =
  | { kind: 'literal'; value: string | number | boolean | null }
  | { kind: 'array'; items: ParsedOperand[] }
  | { kind: 'var'; text: string; root: ArgRoot; path: string[] }
  | { kind: 'exists'; text: string; target: { text: string; root: ArgRoot; path: string[] } }
  | { kind: 'now'; text: string };

/** Thrown by the parser with a message that names the operand and the fix; the compiler adds the location. */
export class OperandError extends Error {}

/** Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), small strings only. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const row = d[i]!;
      const prev = d[i - 1]!;
      let v = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      row[j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

function closest<T extends string>(word: string, choices: readonly T[], maxDistance = 2): T | undefined {
  let best: T | undefined;
  let bestD = Infinity;
  for (const c of choices) {
    const dist = editDistance(word.toLowerCase(), c);
    if (dist < bestD) {
      best = c;
      bestD = dist;
    }
  }
  return bestD <= maxDistance ? best : undefined;
}

const VARIABLE_HELP =
  'variables are args.auth.<claim>, args.params.<path>, args.caller, utils.exists(<variable>) and utils.now(); ' +
  'a string operand that begins with "args." or "utils." is always a variable';

/** Best-effort repair of a mistyped variable, for the "did you mean" hint; undefined when there is no good guess. */
export function suggestVariable(text: string): string | undefined {
  const m = /^\s*([A-Za-z_]+)\s*([.(])(.*)$/s.exec(text);
  if (!m) return undefined;
  const head = closest(m[1]!, ['args', 'utils'] as const);
  if (!head) return undefined;
  if (m[2] !== '.') return undefined;
  if (head === 'args') {
    const segs = m[3]!.split('.');
    // Fix the root when it is close to one; otherwise fix only the head (the root error comes next).
    const root = closest(segs[0] ?? '', ARG_ROOTS) ?? segs[0] ?? '';
    const rest = segs.slice(1).filter((s) => s !== '');
    return ['args', root, ...rest].join('.');
  }
  // utils.<fn>(...)
  const fm = /^\s*([A-Za-z_]*)\s*\((.*)\)\s*$/s.exec(m[3]!);
  if (!fm) return undefined;
  const fn = closest(fm[1]!, UTIL_FUNCTIONS);
  if (fn === 'now') return 'utils.now()';
  if (fn === 'exists') {
    const inner = fm[2]!.trim();
    const repaired = inner.startsWith('args.') ? inner : suggestVariable(inner);
    return repaired && repaired.startsWith('args.') ? `utils.exists(${repaired})` : undefined;
  }
  return undefined;
}

function hint(text: string): string {
  const s = suggestVariable(text);
  return s && s !== text ? `did you mean "${s}"? ` : '';
}

function parseArgsPath(text: string, whole: string): { text: string; root: ArgRoot; path: string[] } {
  // text starts with "args"
  const segs = text.split('.');
  if (segs.length < 2 || segs[1] === '') {
    throw new OperandError(
      `"${whole}" is not a valid variable: name a root after "args.", one of args.auth, args.params, args.caller (${VARIABLE_HELP})`,
    );
  }
  const rootName = segs[1]!;
  if (!(ARG_ROOTS as readonly string[]).includes(rootName)) {
    const guess = closest(rootName, ARG_ROOTS);
    const fix = guess ? `did you mean args.${guess}? ` : '';
    throw new OperandError(
      `"${whole}" is not a valid variable: "args.${rootName}" is not a root; ${fix}the roots are args.auth (JWT claims), args.params (call params) and args.caller (calling service)`,
    );
  }
  const root = rootName as ArgRoot;
  const path = segs.slice(2);
  const empty = path.findIndex((s) => s.trim() === '' || s !== s.trim());
  if (empty >= 0) {
    throw new OperandError(
      `"${whole}" is not a valid variable: path segment ${empty + 3} is empty or has spaces; write dotted names such as args.${root}.items.0.id`,
    );
  }
  if (root === 'caller' && path.length > 0) {
    throw new OperandError(
      `"${whole}" is not a valid variable: args.caller is a string ("namespace/service"), it has no fields; use args.caller itself`,
    );
  }
  return { text, root, path };
}

/** Parses one operand (recursively for arrays). Throws OperandError for a malformed or mistyped variable. */
export function parseOperand(op: unknown): ParsedOperand {
  if (Array.isArray(op)) return { kind: 'array', items: op.map(parseOperand) };
  if (op === null || typeof op === 'number' || typeof op === 'boolean') return { kind: 'literal', value: op };
  if (typeof op !== 'string')
    throw new OperandError(
      `${JSON.stringify(op) ?? String(op)} is not an operand: use a string, number, boolean or array`,
    );

  if (op === 'args' || op.startsWith('args.')) return { kind: 'var', ...parseArgsPath(op, op) };
  if (op === 'utils' || op.startsWith('utils.')) {
    const m = /^utils\.([A-Za-z_]*)\((.*)\)$/s.exec(op);
    if (!m) {
      throw new OperandError(
        `"${op}" is not a valid variable: ${hint(op)}the functions are utils.exists(<variable>) and utils.now() (${VARIABLE_HELP})`,
      );
    }
    const fn = m[1]!;
    const inner = m[2]!;
    if (fn === 'now') {
      if (inner.trim() !== '')
        throw new OperandError(`"${op}" is not a valid variable: utils.now() takes no argument; write "utils.now()"`);
      return { kind: 'now', text: op };
    }
    if (fn === 'exists') {
      if (!inner.startsWith('args.')) {
        throw new OperandError(
          `"${op}" is not a valid variable: ${hint(op)}utils.exists takes a variable such as utils.exists(args.params.id)`,
        );
      }
      return { kind: 'exists', text: op, target: parseArgsPath(inner, op) };
    }
    throw new OperandError(
      `"${op}" is not a valid variable: utils.${fn} is not a function; ${hint(op)}the functions are utils.exists(<variable>) and utils.now()`,
    );
  }
  // A near miss of "args"/"utils" in the first dotted segment is a typo, never a literal.
  const m = /^\s*([A-Za-z_]+)\s*[.(]/.exec(op);
  if (m) {
    const head = m[1]!;
    const near = closest(head, ['args', 'utils'] as const);
    if (near) {
      throw new OperandError(
        `"${op}" looks like a mistyped variable (${head === near ? 'remove the leading whitespace' : `"${head}" is not "${near}"`}): ${hint(op)}(${VARIABLE_HELP}, and a string whose first dotted segment is this close to "args" or "utils" is refused rather than read as a literal)`,
      );
    }
  }
  return { kind: 'literal', value: op };
}

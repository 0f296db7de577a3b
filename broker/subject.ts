/**
 * NATS subject rules, as nats-server applies them: tokens separated by `.`, none empty; `*` matches one
 * token and `>` the rest (one or more), and only whole tokens are wildcards (`a*.b` is a literal token).
 */

/** A subject a client may subscribe to: non-empty tokens, `>` only as the last token, no whitespace. */
export function isValidSubject(subject: string): boolean {
  if (subject.length === 0) return false;
  let tokenStart = 0;
  for (let i = 0; i <= subject.length; i++) {
    const c = i === subject.length ? 46 : subject.charCodeAt(i);
    if (c === 32 || c === 9 || c === 13 || c === 10) return false;
    if (c !== 46) continue;
    const len = i - tokenStart;
    if (len === 0) return false;
    if (len === 1 && subject.charCodeAt(tokenStart) === 62 && i !== subject.length) return false;
    tokenStart = i + 1;
  }
  return true;
}

/** A subject a message may be published to in pedantic mode: valid and without wildcard tokens. */
export function isValidLiteralSubject(subject: string): boolean {
  if (!isValidSubject(subject)) return false;
  for (const t of subject.split('.')) if (t === '*' || t === '>') return false;
  return true;
}

/**
 * Whether `subject` is matched by `pattern`. Tokens of `subject` are taken literally, as nats-server's
 * sublist does: so a wildcard subscription `foo.*` is covered by a pattern `foo.>` or `foo.*` but not by
 * `foo.bar` (this is how subscribe permissions are checked).
 */
export function subjectMatches(pattern: string, subject: string): boolean {
  if (pattern === subject) return true;
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const pt = p[i];
    if (pt === '>') return s.length > i;
    if (i >= s.length) return false;
    if (pt !== '*' && pt !== s[i]) return false;
  }
  return p.length === s.length;
}

/**
 * The subscription index: a trie of subject tokens with `*` / `>` branches (as nats-server's sublist),
 * plus a bounded cache of match results per published subject, invalidated precisely on change.
 */
import { subjectMatches } from './subject';

export interface SublistEntry {
  readonly subject: string;
  readonly queue?: string;
}

/** Plain subscribers all get a message; for each queue group (one array per group) one member does. */
export interface MatchResult<S> {
  psubs: S[];
  qsubs: S[][];
}

class Node<S> {
  next: Level<S> | undefined;
  readonly psubs = new Set<S>();
  readonly qsubs = new Map<string, Set<S>>();
  isEmpty(): boolean {
    return this.psubs.size === 0 && this.qsubs.size === 0 && (this.next === undefined || this.next.isEmpty());
  }
}

class Level<S> {
  readonly nodes = new Map<string, Node<S>>();
  pwc: Node<S> | undefined;
  fwc: Node<S> | undefined;
  isEmpty(): boolean {
    return this.nodes.size === 0 && this.pwc === undefined && this.fwc === undefined;
  }
}

const EMPTY: MatchResult<never> = Object.freeze({ psubs: [], qsubs: [] }) as MatchResult<never>;

export class Sublist<S extends SublistEntry> {
  private readonly root = new Level<S>();
  private readonly cache = new Map<string, MatchResult<S>>();
  private count = 0;

  constructor(private readonly maxCache = 4096) {}

  get size(): number {
    return this.count;
  }

  insert(sub: S): void {
    let level = this.root;
    let node: Node<S> | undefined;
    for (const t of sub.subject.split('.')) {
      if (t === '*') node = level.pwc ??= new Node<S>();
      else if (t === '>') node = level.fwc ??= new Node<S>();
      else {
        node = level.nodes.get(t);
        if (!node) level.nodes.set(t, (node = new Node<S>()));
      }
      level = node.next ??= new Level<S>();
    }
    if (!node) return;
    if (sub.queue === undefined) node.psubs.add(sub);
    else {
      let group = node.qsubs.get(sub.queue);
      if (!group) node.qsubs.set(sub.queue, (group = new Set<S>()));
      group.add(sub);
    }
    this.count++;
    this.invalidate(sub.subject);
  }

  /** Removes a subscription; returns false when it was not there. */
  remove(sub: S, invalidate = true): boolean {
    const path: Array<{ level: Level<S>; node: Node<S>; token: string }> = [];
    let level: Level<S> | undefined = this.root;
    let node: Node<S> | undefined;
    for (const t of sub.subject.split('.')) {
      if (!level) return false;
      node = t === '*' ? level.pwc : t === '>' ? level.fwc : level.nodes.get(t);
      if (!node) return false;
      path.push({ level, node, token: t });
      level = node.next;
    }
    if (!node) return false;
    let removed: boolean;
    if (sub.queue === undefined) removed = node.psubs.delete(sub);
    else {
      const group = node.qsubs.get(sub.queue);
      removed = group?.delete(sub) ?? false;
      if (group && group.size === 0) node.qsubs.delete(sub.queue);
    }
    if (!removed) return false;
    this.count--;
    // prune empty branches bottom-up
    for (let i = path.length - 1; i >= 0; i--) {
      const step = path[i]!;
      if (step.node.next?.isEmpty()) step.node.next = undefined;
      if (!step.node.isEmpty()) break;
      if (step.token === '*') step.level.pwc = undefined;
      else if (step.token === '>') step.level.fwc = undefined;
      else step.level.nodes.delete(step.token);
    }
    if (invalidate) this.invalidate(sub.subject);
    else this.cache.clear();
    return true;
  }

  /** Removes many subscriptions (a closing connection) with one cache reset. */
  removeAll(subs: Iterable<S>): void {
    for (const s of subs) this.remove(s, false);
    this.cache.clear();
  }

  /**
   * Subscriptions matching a published subject. Results are cached unless `cache` is false; reply
   * subjects (`_INBOX.`) are unique per request and are not cached.
   */
  match(subject: string, cache = true): MatchResult<S> {
    const cached = this.cache.get(subject);
    if (cached) return cached;
    const psubs: S[] = [];
    const groups = new Map<string, S[]>();
    const tokens = subject.split('.');
    // a subject with an empty token (`a..b`, `.a`, `a.`) matches nothing, as in nats-server
    if (!tokens.includes('')) matchLevel(this.root, tokens, 0, psubs, groups);
    const result: MatchResult<S> =
      psubs.length === 0 && groups.size === 0 ? (EMPTY as MatchResult<S>) : { psubs, qsubs: [...groups.values()] };
    if (cache && !subject.startsWith('_INBOX.')) {
      if (this.cache.size >= this.maxCache) this.cache.clear();
      this.cache.set(subject, result);
    }
    return result;
  }

  private invalidate(pattern: string): void {
    if (this.cache.size === 0) return;
    for (const key of this.cache.keys()) if (subjectMatches(pattern, key)) this.cache.delete(key);
  }
}

function addNode<S extends SublistEntry>(node: Node<S>, psubs: S[], groups: Map<string, S[]>): void {
  for (const s of node.psubs) psubs.push(s);
  for (const [name, members] of node.qsubs) {
    let g = groups.get(name);
    if (!g) groups.set(name, (g = []));
    for (const s of members) g.push(s);
  }
}

function matchLevel<S extends SublistEntry>(
  start: Level<S> | undefined,
  tokens: string[],
  from: number,
  psubs: S[],
  groups: Map<string, S[]>,
): void {
  let level = start;
  let node: Node<S> | undefined;
  let pwc: Node<S> | undefined;
  for (let i = from; i < tokens.length; i++) {
    if (!level) return;
    if (level.fwc) addNode(level.fwc, psubs, groups);
    pwc = level.pwc;
    if (pwc) matchLevel(pwc.next, tokens, i + 1, psubs, groups);
    node = level.nodes.get(tokens[i]!);
    level = node?.next;
  }
  if (node) addNode(node, psubs, groups);
  if (pwc) addNode(pwc, psubs, groups);
}

/**
 * Output of the local mesh's processes, one line at a time, each prefixed with who wrote it
 * (`greeter-0 fn  | ...`), padded to a common width, and coloured per service when the output is a TTY.
 */
import { Writable } from 'node:stream';

const COLOURS = [36, 33, 35, 32, 34, 91, 96, 93, 95, 92];

export interface PrefixOptions {
  colour: boolean;
  /** Where prefixed lines go. */
  write: (line: string) => void;
}

/** Formats one prefix; pure. */
export function formatPrefix(label: string, width: number, colourIndex: number | undefined, colour: boolean): string {
  const text = `${label.padEnd(width)} |`;
  if (!colour || colourIndex === undefined) return text;
  const code = COLOURS[colourIndex % COLOURS.length]!;
  return `\u001b[${code}m${text}\u001b[0m`;
}

/** Splits a byte stream into lines; the last partial line is kept until the next chunk or `flush()`. */
export class LineSplitter {
  private rest = '';
  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: string | Buffer): void {
    const text = this.rest + chunk.toString();
    const lines = text.split(/\r?\n/);
    this.rest = lines.pop() ?? '';
    for (const line of lines) this.onLine(line);
  }

  flush(): void {
    if (this.rest !== '') this.onLine(this.rest);
    this.rest = '';
  }
}

/** Hands out prefixes: colours per service (stable in order of first use) and a width that fits every label. */
export class Prefixer {
  /** Wide enough for `greeter-0 sc` from the start, so early lines line up with later ones. */
  private width = 12;
  private readonly colours = new Map<string, number>();

  constructor(private readonly options: PrefixOptions) {}

  /** Makes every later prefix at least wide enough for `label`. */
  reserve(label: string): void {
    this.width = Math.max(this.width, label.length);
  }

  line(label: string, group: string, text: string): void {
    this.reserve(label);
    let index = this.colours.get(group);
    if (index === undefined) {
      index = this.colours.size;
      this.colours.set(group, index);
    }
    this.options.write(`${formatPrefix(label, this.width, index, this.options.colour)} ${text}\n`);
  }

  /** A line splitter that prefixes each line of a process's output. */
  splitter(label: string, group: string): LineSplitter {
    this.reserve(label);
    return new LineSplitter((text) => this.line(label, group, text));
  }

  /** A writable stream (for a logger) whose lines are prefixed. */
  stream(label: string, group: string): Writable {
    const splitter = this.splitter(label, group);
    return new Writable({
      write(chunk: Buffer | string, _enc, callback) {
        splitter.push(chunk);
        callback();
      },
      final(callback) {
        splitter.flush();
        callback();
      },
    });
  }
}

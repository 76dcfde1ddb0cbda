/**
 * `--serve-stdio 'SVC=COMMAND ARGS…'`: the Service, and the command split the way a POSIX shell splits words
 * (single quotes literal, double quotes with \" \\ \$ \`, backslash escapes outside quotes), without running a
 * shell: no expansion, no pipes. The command is the user's own, on the user's own host.
 */
export interface StdioServeSpec { service: string; command: string; args: string[] }

export function splitWords(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (ch === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error('unterminated single quote');
      cur += line.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (ch === '"') {
      i++;
      for (; i < line.length && line[i] !== '"'; i++) {
        if (line[i] === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1])) i++;
        cur += line[i];
      }
      if (i >= line.length) throw new Error('unterminated double quote');
      inWord = true;
    } else if (ch === '\\') {
      if (i + 1 < line.length) cur += line[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

export function parseStdioSpec(spec: string): StdioServeSpec {
  const eq = spec.indexOf('=');
  const service = eq < 0 ? '' : spec.slice(0, eq).trim();
  if (!service || !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)?$/.test(service)) {
    throw new Error(`--serve-stdio "${spec}": expected SVC=COMMAND [ARGS…] with a Service name before "="`);
  }
  const words = splitWords(spec.slice(eq + 1));
  if (!words.length) throw new Error(`--serve-stdio "${spec}": no command after "="`);
  return { service: service.replace(/\.default$/, ''), command: words[0], args: words.slice(1) };
}

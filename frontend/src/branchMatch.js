// The branch tester of the Source panel: the same rules as the server's webhook matching
// (integrations/webhooks/matching.py): exact = whole name; wildcard = glob where `*` and `?`
// stop at `/`, `**` as a whole segment spans segments, `[a-z]`/`[!a]` are sets.

function globToRegExp(pattern) {
  const segments = pattern.split('/');
  let out = '';
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1;
    if (segment === '**') {
      out += last ? '.*' : '(?:[^/]*/)*';
      return;
    }
    let j = 0;
    while (j < segment.length) {
      const ch = segment[j];
      if (ch === '*') {
        while (segment[j + 1] === '*') j += 1;
        out += '[^/]*';
      } else if (ch === '?') out += '[^/]';
      else if (ch === '[') {
        const close = segment.indexOf(']', j + 2);
        if (close === -1) out += '\\[';
        else {
          let set = segment.slice(j + 1, close).replace(/\\/g, '\\\\');
          if (set.startsWith('!')) set = `^${set.slice(1)}`;
          out += `[${set}]`;
          j = close;
        }
      } else out += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      j += 1;
    }
    if (!last) out += '/';
  });
  return new RegExp(`^${out}$`);
}

export function globMatches(name, pattern) {
  if (!name) return false;
  try {
    return globToRegExp(pattern).test(name);
  } catch {
    return false;
  }
}

/** The first branch rule that matches `branch`, or null. */
export function matchingRule(branch, rules) {
  for (const rule of rules || []) {
    if (rule.match === 'wildcard' ? globMatches(branch, rule.pattern) : branch === rule.pattern) return rule;
  }
  return null;
}

import { describe, expect, it } from 'vitest';
import { globMatches, matchingRule } from './branchMatch.js';

describe('branch tester', () => {
  it('follows the server glob rules', () => {
    expect(globMatches('release/1.2', 'release/*')).toBe(true);
    expect(globMatches('release/1.2/hotfix', 'release/*')).toBe(false);
    expect(globMatches('release/1.2/hotfix', 'release/**')).toBe(true);
    expect(globMatches('team/a/hotfix', '**/hotfix')).toBe(true);
    expect(globMatches('hotfix', '**/hotfix')).toBe(true);
    expect(globMatches('v1', 'v[0-9]')).toBe(true);
    expect(globMatches('va', 'v[!0-9]')).toBe(true);
    expect(globMatches('feature.x', 'feature?x')).toBe(true);
  });
  it('tells which rule matches', () => {
    const rules = [{ pattern: 'main', match: 'exact' }, { pattern: 'release/*', match: 'wildcard' }];
    expect(matchingRule('release/1.2', rules)).toBe(rules[1]);
    expect(matchingRule('mainx', rules)).toBe(null);
  });
});

import { describe, expect, it } from '@jest/globals';
import { BUILT_IN_ROLES, RESOURCES, grants, parseRole } from '../../src/domain/roles.js';

const role = (name: string) => BUILT_IN_ROLES.find((r) => r.name === name)!;

describe('built-in roles', () => {
  it('are Admin, Analyst, Continuous Integration and None', () => {
    expect(BUILT_IN_ROLES.map((r) => r.name)).toEqual(['Admin', 'Analyst', 'Continuous Integration', 'None']);
  });

  it('give Admin read-write on every resource', () => {
    for (const resource of RESOURCES) expect(grants([role('Admin')], resource, 'READ_WRITE_ACCESS')).toBe(true);
  });

  it('give Analyst read on every resource except Access', () => {
    for (const resource of RESOURCES) {
      expect(grants([role('Analyst')], resource, 'READ_ACCESS')).toBe(resource !== 'Access');
      expect(grants([role('Analyst')], resource, 'READ_WRITE_ACCESS')).toBe(false);
    }
  });

  it('give None nothing', () => {
    expect(grants([role('None')], 'Access', 'READ_ACCESS')).toBe(false);
    expect(grants([role('None')], 'Access', 'NO_ACCESS')).toBe(true);
  });

  it('unite the permissions of several roles', () => {
    expect(grants([role('None'), role('Admin')], 'Access', 'READ_WRITE_ACCESS')).toBe(true);
  });
});

describe('parseRole', () => {
  it('accepts a role and defaults what is missing', () => {
    expect(parseRole('ci-reader', {})).toEqual({ name: 'ci-reader', description: '', permissions: {} });
    expect(
      parseRole('ci', { name: 'ci', description: 'CI', permissions: { Image: 'READ_ACCESS', Access: 2 } }),
    ).toEqual({
      name: 'ci',
      description: 'CI',
      permissions: { Image: 'READ_ACCESS', Access: 'READ_WRITE_ACCESS' },
    });
  });

  it('reports every problem at once', () => {
    expect(() =>
      parseRole(' bad', { name: 'other', description: 5, permissions: { Images: 'READ_ACCESS', Image: 'WRITE' } }),
    ).toThrow(
      'invalid role: name has surrounding spaces or control characters; name "other" in the body differs from " bad" in the path; ' +
        'description must be a string; permissions: unknown resource "Images"; ' +
        'permissions.Image: access must be one of NO_ACCESS, READ_ACCESS, READ_WRITE_ACCESS',
    );
  });

  it('refuses a body that is not an object', () => {
    expect(() => parseRole('x', [])).toThrow('invalid role: body must be a JSON object');
  });
});

// Accept negotiation for /metrics: q-values, specificity, refusals, version parameters.
import { expect, it } from 'vitest';

import { negotiate, refuses } from '../../src/cli/negotiate';

const TEXT = { mediaType: 'text/plain', version: '0.0.4' };
const OPENMETRICS = { mediaType: 'application/openmetrics-text', version: '1.0.0' };
const offers = [TEXT, OPENMETRICS];
const pick = (accept: string | undefined) => negotiate(accept, offers)?.mediaType ?? null;

it('serves text without a header, and OpenMetrics to the header Prometheus sends', () => {
  expect(pick(undefined)).toBe('text/plain');
  expect(pick('')).toBe('text/plain');
  expect(
    pick('application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2'),
  ).toBe('application/openmetrics-text');
  expect(pick('Application/OpenMetrics-Text; Version="1.0.0"')).toBe('application/openmetrics-text');
});

it('q=0 refuses a format, even when a wildcard would accept it', () => {
  expect(pick('application/openmetrics-text;q=0, */*')).toBe('text/plain');
  expect(pick('application/openmetrics-text;q=0,text/plain;q=0.5')).toBe('text/plain');
  expect(pick('text/plain;q=0, application/openmetrics-text;q=0.1')).toBe('application/openmetrics-text');
  expect(pick('application/openmetrics-text;q=0')).toBeNull();
  expect(refuses('application/openmetrics-text;q=0', TEXT)).toBe(false);
  expect(pick('text/plain;q=0, */*;q=0')).toBeNull();
  expect(refuses('text/plain;q=0, */*;q=0', TEXT)).toBe(true);
  expect(refuses('text/*;q=0', TEXT)).toBe(true);
});

it('the highest q wins; the more specific range sets it; a tie goes to text', () => {
  expect(pick('*/*;q=0.5, application/openmetrics-text;q=0.9')).toBe('application/openmetrics-text');
  expect(pick('application/*;q=0.2, text/*;q=0.3')).toBe('text/plain');
  expect(pick('application/openmetrics-text, text/plain')).toBe('text/plain');
  expect(pick('application/openmetrics-text;q=1.0, text/plain;q=0.999')).toBe('application/openmetrics-text');
});

it('a version we do not produce, a malformed q or a non-range does not select a format', () => {
  expect(pick('application/openmetrics-text;version=0.0.1')).toBeNull();
  expect(pick('text/plain;version=0.0.4')).toBe('text/plain');
  expect(pick('application/openmetrics-text;q=abc')).toBeNull();
  expect(pick('application/openmetrics-text;q=1.5')).toBeNull();
  expect(pick('garbage, application/openmetrics-text;q=0.7')).toBe('application/openmetrics-text');
});

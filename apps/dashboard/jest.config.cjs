// End-to-end tests: the real server (built) and the built dashboard in headless Chromium.
const preset = require('../../jest.preset.cjs');
module.exports = {
  ...preset,
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/test/tsconfig.json' }] },
  testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
  testTimeout: 120000,
};

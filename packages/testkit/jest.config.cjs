const preset = require('../../jest.preset.cjs');
module.exports = {
  ...preset,
  // Integration tests spawn real servers and CLI processes on a small, busy CI box.
  testTimeout: 30000,
  projects: [
    { ...preset, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.spec.ts'] },
    { ...preset, displayName: 'integration', testMatch: ['<rootDir>/test/**/*.int-spec.ts'] },
  ],
};

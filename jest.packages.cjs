// Jest config of the SDK, CLI and testkit packages (each package's jest.config.cjs re-exports it;
// `<rootDir>` is that package): unit tests in src/, integration tests in test/.
const preset = require('./jest.preset.cjs');
module.exports = {
  ...preset,
  // Integration tests spawn real servers and CLI processes on a small, busy CI box.
  testTimeout: 30000,
  projects: [
    { ...preset, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.spec.ts'] },
    { ...preset, displayName: 'integration', testMatch: ['<rootDir>/test/**/*.int-spec.ts'] },
  ],
};

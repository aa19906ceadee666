// Shared jest preset: ESM TypeScript through ts-jest (Nest 12 and jose 6 are ESM-only).
// Run jest with NODE_OPTIONS=--experimental-vm-modules (the package scripts do).
module.exports = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }],
  },
};

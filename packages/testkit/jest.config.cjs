module.exports = require('../../jest.packages.cjs');

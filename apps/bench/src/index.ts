export { benchCommand } from './bench-command.js';

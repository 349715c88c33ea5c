export { main, helpText, COMMANDS } from './main.js';

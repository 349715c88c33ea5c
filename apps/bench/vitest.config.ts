import { defineConfig } from 'vitest/config';
import { gradqVitest } from '../../vitest.shared.js';

export default defineConfig(gradqVitest(import.meta.dirname));

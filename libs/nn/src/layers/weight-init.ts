import type { Rng } from '../rng.js';

export type InitScheme = 'he' | 'xavier';
export const INIT_SCHEMES: readonly InitScheme[] = ['he', 'xavier'];

/**
 * Fills w, in index order, with draws from N(0, σ²), σ = √(2/fanIn) (he) or √(2/(fanIn + fanOut)) (xavier), where
 * fanIn and fanOut are the inputs and outputs each weight connects (dense: inDim and outDim).
 */
export function initWeights(w: Float32Array, rng: Rng, scheme: InitScheme, fanIn: number, fanOut: number): void {
  const std = Math.sqrt(scheme === 'he' ? 2 / fanIn : 2 / (fanIn + fanOut));
  for (let i = 0; i < w.length; i++) w[i] = rng.nextNormal() * std;
}

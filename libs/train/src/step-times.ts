/** Steps, samples and milliseconds (gradient source, optimizer) summed over some of a run's steps. */
export class StepTimes {
  steps = 0;
  samples = 0;
  sourceMs = 0;
  optimizerMs = 0;
  get ms(): number {
    return this.sourceMs + this.optimizerMs;
  }
  add(samples: number, sourceMs: number, optimizerMs: number): void {
    this.steps++;
    this.samples += samples;
    this.sourceMs += sourceMs;
    this.optimizerMs += optimizerMs;
  }
  meanMs(): { gradients: number; optimizer: number } {
    const n = Math.max(1, this.steps);
    return { gradients: this.sourceMs / n, optimizer: this.optimizerMs / n };
  }
}

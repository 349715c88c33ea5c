/** One split of a dataset: `count` images of `rows` x `cols` bytes each, row-major, and one label per image. */
export interface Split {
  count: number;
  rows: number;
  cols: number;
  /** rows * cols: the length of one input vector. */
  features: number;
  /** count * features bytes, 0 = background. */
  pixels: Uint8Array;
  /** count labels, each in [0, 10). */
  labels: Uint8Array;
}

/** A loaded, verified dataset. */
export interface Dataset {
  name: string;
  classNames: readonly string[];
  train: Split;
  test: Split;
}

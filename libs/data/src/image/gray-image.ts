/** A grayscale image: width × height brightness values in [0, 1] (0 black, 1 white), row-major. */
export interface GrayImage {
  width: number;
  height: number;
  pixels: Float32Array;
}

/** A rectangle of pixels, columns [x0, x1) and rows [y0, y1). */
export interface PixelBox {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

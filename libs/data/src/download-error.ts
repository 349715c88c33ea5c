import { DataError } from './data-error.js';

/** A dataset file could not be fetched from any mirror (network, HTTP status or content hash). */
export class DownloadError extends DataError {
  override name = 'DownloadError';
}

/** A rate as a person reads it, in decimal units: "512 B/s", "10.0 kB/s", "1.25 MB/s". */
export function formatRate(bytesPerSecond: number): string {
  const abs = Math.abs(bytesPerSecond);
  if (abs < 1000) return `${Math.round(bytesPerSecond)} B/s`;
  if (abs < 1e6) return `${(bytesPerSecond / 1000).toFixed(1)} kB/s`;
  if (abs < 1e9) return `${(bytesPerSecond / 1e6).toFixed(2)} MB/s`;
  return `${(bytesPerSecond / 1e9).toFixed(2)} GB/s`;
}

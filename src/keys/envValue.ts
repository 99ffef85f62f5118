/** An environment variable's value, or `undefined` when it is unset or blank. */
export function envValue(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

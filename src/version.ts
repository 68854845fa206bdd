/**
 * @since 0.1.0
 */

/**
 * This package's version (kept equal to package.json by a test).
 *
 * @since 0.1.0
 * @category constants
 */
export const version: string = "0.1.0"

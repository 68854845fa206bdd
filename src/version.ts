/**
 * The version of this package, as a constant.
 *
 * Use it to say which library build is running: the pipeline's
 * `HealthStatus.version` and the command's start-up line carry it. For your
 * own application's version, use your own constant.
 *
 * Gotchas: it is a plain string kept equal to package.json's `version` by a
 * test (not read from package.json at run time); compare versions with a
 * semver library, not with `<`.
 *
 * @since 0.1.0
 * @module
 */

/**
 * This package's version, in semver form (`0.2.0`).
 *
 * @since 0.1.0
 * @category constants
 */
export const version: string = "0.2.0"

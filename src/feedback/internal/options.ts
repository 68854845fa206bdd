/**
 * Checks of the feedback loop's options, shared by the bus and the handler:
 * each answers the first problem found (the option's path, the value given,
 * what was expected) or `undefined`. Values may come from untyped callers, so
 * nothing is assumed about their type.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Formatter from "effect/Formatter"
import * as Option from "effect/Option"

/** @internal */
export interface Problem {
  readonly option: string
  readonly value: unknown
  readonly expected: string
}

/** What a component's options error says: `FeedbackBus option bufferSize must be a positive integer, got 0`. @internal */
export const describe = (component: string, problem: Problem): string =>
  `${component} option ${problem.option} must be ${problem.expected}, got ${Formatter.format(problem.value)}`

/** @internal */
export type Check = (option: string, value: unknown) => Problem | undefined

const check = (expected: string, test: (value: unknown) => boolean): Check => (option, value) =>
  test(value) ? undefined : { option, value, expected }

/** @internal */
export const positiveInteger: Check = check(
  "a positive integer",
  (value) => typeof value === "number" && Number.isSafeInteger(value) && value > 0
)

/** @internal */
export const nonEmptyString: Check = check("a non-empty string", (value) => typeof value === "string" && value !== "")

/** @internal */
export const unitInterval: Check = check(
  "a number from 0 to 1",
  (value) => typeof value === "number" && value >= 0 && value <= 1
)

/** @internal */
export const object: Check = check("an object", (value) => typeof value === "object" && value !== null)

/** A `Duration.Input` that decodes to a positive, finite duration. @internal */
export const positiveDuration: Check = check(
  "a positive, finite duration (e.g. \"30 seconds\" or a number of milliseconds)",
  (value) => {
    const duration = Duration.fromInput(value as Duration.Input)
    return Option.isSome(duration) && Duration.isFinite(duration.value) && Duration.isPositive(duration.value)
  }
)

/** An optional option: `undefined` passes, anything else must pass `inner`. @internal */
export const optional = (inner: Check): Check => (option, value) =>
  value === undefined ? undefined : inner(option, value)

/** An array whose every element passes `inner` (named `option[i]`). @internal */
export const arrayOf = (inner: Check): Check => (option, value) => {
  if (!Array.isArray(value)) return { option, value, expected: "an array" }
  for (let i = 0; i < value.length; i++) {
    const problem = inner(`${option}[${i}]`, value[i])
    if (problem !== undefined) return problem
  }
  return undefined
}

/**
 * The fields of an object, each with its check, named `option.field` (just
 * `field` at the root, where `option` is ""); the object itself must be one.
 *
 * @internal
 */
export const fields = (checks: Readonly<Record<string, Check>>): Check => (option, value) => {
  const notObject = object(option === "" ? "options" : option, value)
  if (notObject !== undefined) return notObject
  for (const field in checks) {
    const problem = checks[field]!(
      option === "" ? field : `${option}.${field}`,
      (value as Record<string, unknown>)[field]
    )
    if (problem !== undefined) return problem
  }
  return undefined
}

/**
 * `make`, when `options` pass `check`; otherwise fails at once with the
 * error made of the first problem.
 *
 * @internal
 */
export const validated = <O, X, A, E, R>(
  check: Check,
  toError: (problem: Problem) => X,
  make: (options: O) => Effect.Effect<A, E, R>
) =>
(options: O): Effect.Effect<A, E | X, R> =>
  Effect.suspend((): Effect.Effect<A, E | X, R> => {
    const problem = check("", options)
    return problem === undefined ? make(options) : Effect.fail(toError(problem))
  })

import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"

/**
 * What a recording test layer keeps: every value received, in order.
 *
 * @internal
 */
export const makeRecorder = <A>(): Effect.Effect<{
  readonly record: (value: A) => Effect.Effect<void>
  readonly recorded: Effect.Effect<ReadonlyArray<A>>
}> =>
  Effect.map(Ref.make<ReadonlyArray<A>>([]), (ref) => ({
    record: (value) => Ref.update(ref, (values) => [...values, value]),
    recorded: Ref.get(ref)
  }))

import { assert, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import { BackpressureLevel } from "market-data-pipeline"
import { Entry, Table } from "../../../src/feedback/internal/table.ts"

// A report (an id and a level) or, with "forget", a removal.
const Op = Schema.Tuple([
  Schema.Literals(["a", "b", "c", "d", "e", "f"]),
  Schema.Union([BackpressureLevel, Schema.Literal("forget")])
])

describe("Table", () => {
  it.prop("agrees with a plain model: worst, size, idlest, and which entry gives way when full", {
    max: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 4 })),
    ops: Schema.Array(Op).check(Schema.isMinLength(10), Schema.isMaxLength(100))
  }, ({ max, ops }) => {
    const evicted: Array<string> = []
    const table = new Table<Entry>(max, (entry) => evicted.push(entry.coordinatorId))
    // id → [level, time of last report]
    const model = new Map<string, [BackpressureLevel, number]>()
    ops.forEach(([id, op], time) => {
      const held = table.get(id)
      if (op === "forget") {
        if (held !== undefined) assert.isTrue(table.remove(held))
        model.delete(id)
      } else if (held !== undefined) {
        table.report(held, op)
        model.set(id, [op, time])
      } else {
        const idleOk = [...model].filter(([, [level]]) => level === "ok").sort((x, y) => x[1][1] - y[1][1])[0]
        const room = table.makeRoom()
        if (model.size < max) assert.isTrue(room)
        else if (idleOk === undefined) assert.isFalse(room)
        else {
          assert.isTrue(room)
          assert.strictEqual(evicted.at(-1), idleOk[0])
          model.delete(idleOk[0])
        }
        if (room) {
          table.add(new Entry(id, op))
          model.set(id, [op, time])
        }
      }
      const levels = [...model.values()].map(([level]) => level)
      assert.strictEqual(table.worst(), levels.includes("hard") ? "hard" : levels.includes("soft") ? "soft" : "ok")
      assert.strictEqual(table.size, model.size)
      assert.isAtMost(table.size, max)
      const idlest = [...model].sort((x, y) => x[1][1] - y[1][1])[0]?.[0]
      assert.strictEqual(table.idlest()?.coordinatorId, idlest)
    })
  }, { arbitrary: { runs: 500, size: 100 } })
})

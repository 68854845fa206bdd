/**
 * A bounded table of coordinators keyed by id, answering in constant time
 * what the feedback loop asks of it on every event: the worst level held (a
 * count per level), the least recently reported entry (for a level TTL) and
 * the least recently reported entry at `ok` (the one a new coordinator may
 * replace when the table is full). Both orders are intrusive linked lists,
 * so a report moves an entry without allocating. Reports arrive in the
 * Clock's order, so "least recently reported" is "longest idle".
 *
 * @internal
 */
import type { BackpressureLevel } from "../../contracts/BackpressureLevel.ts"

/** A place in one of the table's orders. @internal */
export class Link<E> {
  older: Link<E> | undefined = undefined
  newer: Link<E> | undefined = undefined
  readonly entry: E
  constructor(entry: E) {
    this.entry = entry
  }
}

/** Oldest to newest; links are appended as the newest. @internal */
class Chain<E> {
  oldest: Link<E> | undefined = undefined
  newest: Link<E> | undefined = undefined

  append(link: Link<E>): void {
    link.older = this.newest
    link.newer = undefined
    if (this.newest === undefined) this.oldest = link
    else this.newest.newer = link
    this.newest = link
  }

  unlink(link: Link<E>): void {
    if (link.older === undefined) this.oldest = link.newer
    else link.older.newer = link.newer
    if (link.newer === undefined) this.newest = link.older
    else link.newer.older = link.older
    link.older = link.newer = undefined
  }

  /** Makes a linked `link` the newest. */
  touch(link: Link<E>): void {
    if (this.newest === link) return
    this.unlink(link)
    this.append(link)
  }
}

/**
 * One coordinator's entry; owners extend it with what they keep per
 * coordinator. The links belong to the table.
 *
 * @internal
 */
export class Entry {
  readonly byReport: Link<this> = new Link(this)
  readonly byIdleOk: Link<this> = new Link(this)
  readonly coordinatorId: string
  level: BackpressureLevel
  constructor(coordinatorId: string, level: BackpressureLevel) {
    this.coordinatorId = coordinatorId
    this.level = level
  }
}

/** @internal */
export class Table<E extends Entry> {
  readonly #byId = new Map<string, E>()
  readonly #counts = { ok: 0, soft: 0, hard: 0 }
  readonly #byReport = new Chain<E>()
  readonly #byIdleOk = new Chain<E>()
  /** The most entries held at once. */
  readonly max: number
  readonly #onEvict: (entry: E) => void

  /** `onEvict` is called with an `ok` entry `makeRoom` removed. */
  constructor(max: number, onEvict: (entry: E) => void) {
    this.max = max
    this.#onEvict = onEvict
  }

  get size(): number {
    return this.#byId.size
  }

  get(coordinatorId: string): E | undefined {
    return this.#byId.get(coordinatorId)
  }

  values(): IterableIterator<E> {
    return this.#byId.values()
  }

  /** The worst level held; `ok` when empty. */
  worst(): BackpressureLevel {
    return this.#counts.hard > 0 ? "hard" : this.#counts.soft > 0 ? "soft" : "ok"
  }

  /** The least recently reported entry. */
  idlest(): E | undefined {
    return this.#byReport.oldest?.entry
  }

  /**
   * Ensures room for one more entry: when full, evicts the longest-idle
   * entry at `ok` (through `onEvict`). False when full and none is at `ok`:
   * an entry at `soft` or `hard` is never evicted.
   */
  makeRoom(): boolean {
    if (this.#byId.size < this.max) return true
    const victim = this.#byIdleOk.oldest?.entry
    if (victim === undefined) return false
    this.remove(victim)
    this.#onEvict(victim)
    return true
  }

  /** Whether `makeRoom` would succeed now (nothing is evicted). */
  hasRoom(): boolean {
    return this.#byId.size < this.max || this.#byIdleOk.oldest !== undefined
  }

  /** Adds a new entry as the most recently reported; `makeRoom` first. */
  add(entry: E): void {
    this.#byId.set(entry.coordinatorId, entry)
    this.#counts[entry.level]++
    this.#byReport.append(entry.byReport)
    if (entry.level === "ok") this.#byIdleOk.append(entry.byIdleOk)
  }

  /** A held entry reports `level`: it becomes the most recently reported. */
  report(entry: E, level: BackpressureLevel): void {
    this.#byReport.touch(entry.byReport)
    const was = entry.level
    if (was === level) {
      if (level === "ok") this.#byIdleOk.touch(entry.byIdleOk)
      return
    }
    this.#counts[was]--
    this.#counts[level]++
    entry.level = level
    if (was === "ok") this.#byIdleOk.unlink(entry.byIdleOk)
    else if (level === "ok") this.#byIdleOk.append(entry.byIdleOk)
  }

  /** Removes a held entry; false if it was not held. */
  remove(entry: E): boolean {
    if (this.#byId.get(entry.coordinatorId) !== entry) return false
    this.#byId.delete(entry.coordinatorId)
    this.#counts[entry.level]--
    this.#byReport.unlink(entry.byReport)
    if (entry.level === "ok") this.#byIdleOk.unlink(entry.byIdleOk)
    return true
  }
}

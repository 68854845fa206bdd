/**
 * The pieces of Python's `json.dumps` (default arguments) that a Pulse body
 * needs to be byte-identical to a Python publisher's: `repr` floats and
 * `ensure_ascii` strings.
 *
 * @internal
 */

/**
 * Formats a finite double as Python's `repr(float)` (which `json.dumps`
 * uses): the shortest digits that round-trip, exponent notation when the
 * decimal exponent is below -4 or at least 16, a two-digit minimum exponent
 * (`1e-05`, `1e+16`), and `.0` on integral values written without exponent.
 *
 * Throws a `RangeError` on NaN and ±Infinity: `json.dumps` would write the
 * non-JSON tokens `NaN`/`Infinity`, which no strict JSON reader accepts.
 *
 * @internal
 */
export const pyFloatRepr = (x: number): string => {
  if (!Number.isFinite(x)) throw new RangeError(`cannot write the non-finite float ${x} as JSON`)
  if (x === 0) return 1 / x < 0 ? "-0.0" : "0.0"
  const abs = x < 0 ? -x : x
  if (abs >= 1e-4 && abs < 1e16) {
    // JavaScript writes fixed notation for 1e-7 ≤ |x| < 1e21, with the same shortest digits
    const s = "" + x
    return Number.isInteger(x) ? s + ".0" : s
  }
  return (x < 0 ? "-" : "") + exponentForm("" + abs)
}

// Shortest digits of a positive double as JavaScript prints them → "d[.ddd]e±XX".
const exponentForm = (s: string): string => {
  const e = s.indexOf("e")
  let mantissa: string
  let exponent: number
  if (e !== -1) {
    mantissa = s.slice(0, e)
    exponent = Number(s.slice(e + 1))
  } else if (s.startsWith("0.")) {
    // 1e-7 ≤ x < 1e-4: "0.0000ddd"
    const fraction = s.slice(2)
    let zeros = 0
    while (fraction.charCodeAt(zeros) === 48) zeros++
    const digits = fraction.slice(zeros)
    mantissa = digits.length > 1 ? digits[0] + "." + digits.slice(1) : digits
    exponent = -(zeros + 1)
  } else {
    // 1e16 ≤ x < 1e21: all integer digits
    let end = s.length
    while (end > 1 && s.charCodeAt(end - 1) === 48) end--
    const digits = s.slice(0, end)
    mantissa = digits.length > 1 ? digits[0] + "." + digits.slice(1) : digits
    exponent = s.length - 1
  }
  const magnitude = exponent < 0 ? -exponent : exponent
  return mantissa + (exponent < 0 ? "e-" : "e+") + (magnitude < 10 ? "0" : "") + magnitude
}

const hex = "0123456789abcdef"

// printable ASCII other than `"` and `\`: written as is
const plain = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/

/**
 * Writes a string as `json.dumps(s)` does with `ensure_ascii=True`: every
 * UTF-16 code unit outside printable ASCII as a lowercase `\uXXXX` escape
 * (so a character beyond the BMP becomes its surrogate pair), except the
 * short escapes `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`.
 *
 * @internal
 */
export const pyString = (s: string): string => {
  if (plain.test(s)) return "\"" + s + "\""
  let out = "\""
  let start = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c) continue
    out += s.slice(start, i)
    start = i + 1
    switch (c) {
      case 0x22:
        out += "\\\""
        break
      case 0x5c:
        out += "\\\\"
        break
      case 0x08:
        out += "\\b"
        break
      case 0x0c:
        out += "\\f"
        break
      case 0x0a:
        out += "\\n"
        break
      case 0x0d:
        out += "\\r"
        break
      case 0x09:
        out += "\\t"
        break
      default:
        out += "\\u" + hex[(c >> 12) & 15] + hex[(c >> 8) & 15] + hex[(c >> 4) & 15] + hex[c & 15]
    }
  }
  return out + s.slice(start) + "\""
}

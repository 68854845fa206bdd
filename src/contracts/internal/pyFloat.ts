/**
 * Formats a double exactly as pydantic 2's `model_dump_json()` writes a
 * `float` field. A non-finite one (`NaN`, `±Infinity`) is `null`, as pydantic
 * writes it by default (`ser_json_inf_nan='null'`), so the text stays JSON.
 *
 * Both sides print the shortest digits that round-trip, so only the layout
 * differs from `Number.prototype.toString`:
 * - pydantic switches to exponent notation for decimal exponents ≥ 16 and
 *   ≤ -6; JavaScript does so only from 21 and -7 on;
 * - an integral value keeps `.0` (`1.0`, `-0.0`);
 * - exponents are written `e+16` / `e-7`, as JavaScript already does.
 *
 * @internal
 */
export const formatFloat = (x: number): string => {
  if (!Number.isFinite(x)) return "null"
  const s = "" + x
  if (x >= 1e16 || x <= -1e16) {
    return s.includes("e") ? s : integerToExponent(s)
  }
  if (Number.isInteger(x)) {
    return x === 0 && 1 / x < 0 ? "-0.0" : s + ".0"
  }
  if (x > -1e-5 && x < 1e-5 && !s.includes("e")) {
    return fractionToExponent(s)
  }
  return s
}

// "12345000000000000000" (16 ≤ exponent ≤ 20) → "1.2345e+19"
const integerToExponent = (s: string): string => {
  const negative = s.charCodeAt(0) === 45
  const digits = negative ? s.slice(1) : s
  const significant = digits.replace(/0+$/, "")
  const mantissa = significant.length > 1 ? significant[0] + "." + significant.slice(1) : significant
  return (negative ? "-" : "") + mantissa + "e+" + (digits.length - 1)
}

// "0.0000012345" (exponent -6) → "1.2345e-6"
const fractionToExponent = (s: string): string => {
  const negative = s.charCodeAt(0) === 45
  const fraction = (negative ? s.slice(1) : s).slice(2)
  const zeros = fraction.length - fraction.replace(/^0+/, "").length
  const significant = fraction.slice(zeros)
  const mantissa = significant.length > 1 ? significant[0] + "." + significant.slice(1) : significant
  return (negative ? "-" : "") + mantissa + "e-" + (zeros + 1)
}

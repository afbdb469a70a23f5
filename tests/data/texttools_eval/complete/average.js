// The mean of an array of numbers; NaN for an empty array.
function average(values) {
  <|cursor|>
}

module.exports = { average };

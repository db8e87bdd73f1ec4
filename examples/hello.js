// A script for `confine run examples/hello.js`: top-level code, a timer, a promise.
const greet = (name) => `Hello, ${name}!`;

console.log(greet("sandbox"));

setTimeout(() => {
  console.log("a timer fired after 10 ms");
}, 10);

Promise.resolve(21).then((n) => console.log("the answer is", n * 2));

module.exports.greet = greet;
module.exports.add = (a, b) => a + b;

// highlight.js is browser code that the server imports `with { type: "text" }`: to TypeScript it is a string.
declare const source: string;
export default source;

// Stylesheets imported `with { type: "text" }` are their text.
declare module "*.css" {
  const source: string;
  export default source;
}

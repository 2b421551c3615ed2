// Files imported `with { type: "file" }` resolve to a path on disk (or in the executable's $bunfs).
declare module "swagger-ui-dist/*" {
  const path: string;
  export default path;
}

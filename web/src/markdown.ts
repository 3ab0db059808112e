// How assistant text is prepared for CopilotKit's markdown renderer (Streamdown).
//
// Replies that quote data (a model quoting a tool's result, "… returned: {…}") contain JSON. Read as markdown, its URLs become GFM autolinks that run on to the next space
// ("http://127.0.0.1:8080","subject":"vera","name":"Vera"), which is not a valid URL, so
// Streamdown's link hardening (rehype-harden) replaces it with "… [blocked]" and the name in the
// reply reads "Vera [blocked] Viewer". A JSON object or array is data, not prose: showing it as
// inline code keeps it literal (no links, no emphasis) and readable.

/** Wraps each line's JSON object or array literal in an inline code span; leaves everything else. */
export function showJsonLiterally(markdown: string): string {
  // Text that already has code spans or fences is left to the author.
  if (markdown.includes("`")) return markdown;
  return markdown
    .split("\n")
    .map((line) => {
      const start = line.search(/[[{]/);
      if (start < 0) return line;
      const end = Math.max(line.lastIndexOf("}"), line.lastIndexOf("]"));
      if (end <= start) return line;
      const candidate = line.slice(start, end + 1);
      try {
        const value: unknown = JSON.parse(candidate);
        if (value === null || typeof value !== "object") return line;
      } catch {
        return line;
      }
      return `${line.slice(0, start)}\`${candidate}\`${line.slice(end + 1)}`;
    })
    .join("\n");
}

// MathJax 3 configuration for the whole site; MathJax itself is served from assets/mathjax/.
// Markdown pages and docstrings: pymdownx.arithmatex wraps math in .arithmatex elements as \( \) / \[ \].
// Notebook pages: nbconvert leaves $...$ and $$...$$ in the rendered markdown cells and in
// text/latex outputs. Everything else (code, outputs) is left alone, so a "$" in code stays a "$".
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
    tags: "ams",
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex|jp-RenderedMarkdown|jp-RenderedLatex",
  },
};

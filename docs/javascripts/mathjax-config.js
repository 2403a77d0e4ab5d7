// MathJax 3 configuration for the whole site; MathJax itself is served from assets/mathjax/.
// Only the elements that hold math are typeset:
// - .arithmatex: markdown pages and docstrings, where pymdownx.arithmatex wraps math as \( \) / \[ \];
// - .jp-RenderedMarkdown / .jp-RenderedLatex: notebook markdown cells and text/latex outputs, where
//   nbconvert leaves $...$ and $$...$$ as written.
// Code, notebook outputs and the rest of the page are never scanned, so a "$" there stays a "$".
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
    tags: "ams",
  },
  startup: {
    elements: [".arithmatex", ".jp-RenderedMarkdown", ".jp-RenderedLatex"],
  },
};

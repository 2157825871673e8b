// The report as a typed document: headings, paragraphs, bullet lists and tables built once from
// the report JSON (report_document), then rendered by each format (Markdown, HTML) without one
// reading the other's output. Private to sim/report/.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace qsim::sim::report_detail {

struct Cell {
  std::string text;
  bool bad = false;  // a failed check: bold in Markdown, red in HTML
};

struct Block {
  enum class Kind { heading, paragraph, bullets, table } kind = Kind::paragraph;
  int level = 2;                          // heading: 1 (title), 2, 3
  std::string text;                       // heading, paragraph
  std::vector<std::string> items;         // bullets
  std::vector<std::string> header;        // table
  std::vector<bool> numeric;              // table: right-aligned columns
  std::vector<std::vector<Cell>> rows;    // table
  bool meta = false;                      // the run's identity (seed, replay): HTML shows it apart
};

class Document {
public:
  void heading(int level, std::string text) {
    Block b;
    b.kind = Block::Kind::heading;
    b.level = level;
    b.text = std::move(text);
    add(std::move(b));
  }
  void paragraph(std::string text, bool meta = false) {
    Block b;
    b.text = std::move(text);
    b.meta = meta;
    add(std::move(b));
  }
  void bullets(std::vector<std::string> items) {
    if (items.empty()) return;
    Block b;
    b.kind = Block::Kind::bullets;
    b.items = std::move(items);
    add(std::move(b));
  }
  // Columns named in `header`; those flagged in `numeric` are right-aligned. Rows via row().
  Block& table(std::vector<std::string> header, std::vector<bool> numeric) {
    Block b;
    b.kind = Block::Kind::table;
    b.header = std::move(header);
    b.numeric = std::move(numeric);
    add(std::move(b));
    return blocks_.back();
  }
  const std::vector<Block>& blocks() const { return blocks_; }

private:
  void add(Block b) { blocks_.push_back(std::move(b)); }
  std::vector<Block> blocks_;
};

Document report_document(const nlohmann::json& rep);
std::string to_markdown(const Document& d);
std::string to_html(const Document& d);  // the blocks as HTML elements, without <html> and <body>
std::string to_html(const Document& d, std::size_t from, std::size_t to);  // blocks [from, to)

}  // namespace qsim::sim::report_detail

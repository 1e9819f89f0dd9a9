//! A small aligned-table printer: columns padded to their widest cell, two
//! spaces apart. Width is the cell's display width in a terminal
//! (`unicode-width`): a Chinese character takes two columns, so names such as
//! 鑫苑社区 line up with Latin ones.

use std::fmt;

use unicode_width::UnicodeWidthStr;

#[derive(Debug, Default)]
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first row is `header`.
    pub(crate) fn new<I, S>(header: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut table = Self::default();
        table.row(header);
        table
    }

    /// A table without a header (label / value pairs).
    pub(crate) fn plain() -> Self {
        Self::default()
    }

    /// Adds a row; control characters (newlines in notes) become spaces so a
    /// row stays one line.
    pub(crate) fn row<I, S>(&mut self, cells: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(
            cells
                .into_iter()
                .map(|cell| cell.into().replace(char::is_control, " "))
                .collect(),
        );
        self
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|column| {
                self.rows
                    .iter()
                    .filter_map(|row| row.get(column))
                    .map(|cell| cell.width())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &self.rows {
            let mut line = String::new();
            for (column, cell) in row.iter().enumerate() {
                if column > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let width = widths.get(column).copied().unwrap_or(0);
                line.extend(std::iter::repeat_n(' ', width.saturating_sub(cell.width())));
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_to_their_widest_cell() {
        let mut table = Table::new(["id", "status", "grid"]);
        table.row(["c-1", "submitted", "xinyuan-1"]);
        table.row(["c-22", "closed", "-"]);
        assert_eq!(
            table.to_string(),
            "id    status     grid\n\
             c-1   submitted  xinyuan-1\n\
             c-22  closed     -\n"
        );
    }

    #[test]
    fn wide_characters_count_two_columns() {
        let mut table = Table::plain();
        table.row(["鑫苑社区", "xinyuan"]);
        table.row(["west", "xililu"]);
        table.row(["东风路1号", "dongfeng"]);
        // 鑫苑社区 is 8 columns wide, 东风路1号 9: both line up with `west`.
        assert_eq!(
            table.to_string(),
            "鑫苑社区   xinyuan\n\
             west       xililu\n\
             东风路1号  dongfeng\n"
        );
    }

    #[test]
    fn a_newline_in_a_cell_keeps_the_row_on_one_line() {
        let mut table = Table::plain();
        table.row(["note", "fixed\nthe lamp"]);
        assert_eq!(table.to_string(), "note  fixed the lamp\n");
    }

    #[test]
    fn an_empty_table_prints_nothing() {
        assert_eq!(Table::plain().to_string(), "");
    }
}

"""Sections: collapsible boxes of which any number can be open at once (an Accordion opens only one).

A closed section holds no widgets in the page: its content is attached when it opens, so plots in it are
drawn at their real size (a bqplot figure laid out while hidden has a negative width).

>>> s = Sections([widgets.Label('a'), widgets.Label('b')], titles=['first', 'second'], open=[0, 1])
>>> s.is_open(1)
True
"""
import ipywidgets as widgets

__all__ = ['Sections']


class Sections(widgets.VBox):
    """A column of sections, each a header button that opens or closes the content below it.

    Parameters
    ----------
    children : list of widgets
        the content of each section
    titles : list of str
        the header text of each section (as many as children)
    open : iterable of int
        the sections open at first (default: none)
    """

    def __init__(self, children, titles, open=(), **kwargs):
        children, titles = list(children), [str(t) for t in titles]
        if len(children) != len(titles):
            raise ValueError('%d sections need %d titles, not %d' % (len(children), len(children), len(titles)))
        self.contents = children
        self.headers, self.bodies = [], []
        boxes = []
        for i, title in enumerate(titles):
            header = widgets.ToggleButton(value=False, layout=widgets.Layout(width='auto'))
            header.add_class('convis-section-header')
            header.observe(lambda change, i=i: self._toggled(i, change['new']), 'value')
            body = widgets.Box([], layout=widgets.Layout(width='100%'))
            self.headers.append(header)
            self.bodies.append(body)
            box = widgets.VBox([header, body], layout=widgets.Layout(width='100%'))
            box.add_class('convis-section')
            boxes.append(box)
        super().__init__(boxes, **kwargs)
        self.add_class('convis-sections')
        self._titles = titles
        self._show_titles()
        for i in open:
            self.set_open(i, True)

    @property
    def titles(self):
        """The header texts."""
        return tuple(self._titles)

    @titles.setter
    def titles(self, titles):
        titles = [str(t) for t in titles]
        if len(titles) != len(self.headers):
            raise ValueError('%d sections need %d titles, not %d' % (len(self.headers), len(self.headers), len(titles)))
        self._titles = titles
        self._show_titles()

    def _show_titles(self):
        for header, title in zip(self.headers, self._titles):
            header.description = ('\u25be ' if header.value else '\u25b8 ') + title
            header.tooltip = ('close ' if header.value else 'open ') + title

    def is_open(self, i):
        """Whether section ``i`` is open."""
        return bool(self.headers[i].value)

    def set_open(self, i, value=True):
        """Opens (or closes) section ``i``; the others stay as they are."""
        self.headers[i].value = bool(value)

    def _toggled(self, i, value):
        self.bodies[i].children = [self.contents[i]] if value else []
        self._show_titles()

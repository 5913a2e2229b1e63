#!/usr/bin/env python3
"""Parses a classify HTML report and prints what a person would see, as JSON:
the gallery's cards (path, true, predicted, right/wrong, inline image or
not), the confusion grid's counts, and anything that would need the network."""
import json
import sys
from html.parser import HTMLParser


class Report(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cards, self.cells, self.external, self.stack = [], [], [], []
        self.notes = []
        self._in_note = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag not in ("img", "br", "meta", "link"):
            self.stack.append(tag)
        if tag == "figure":
            self.cards.append({"path": a["data-path"], "true": a["data-true"], "predicted": a["data-predicted"],
                               "class": a["class"].split()[1], "image": False, "missing": False})
        elif tag == "img" and self.cards:
            self.cards[-1]["image"] = a.get("src", "").startswith("data:image/")
        elif tag == "div" and "missing" in a.get("class", "") and self.cards:
            self.cards[-1]["missing"] = True
        elif tag == "td" and "data-count" in a:
            self.cells.append([a["data-true"], a["data-predicted"], int(a["data-count"])])
        elif tag == "p" and a.get("class") == "note":
            self._in_note = True
            self.notes.append("")
        for k in ("src", "href"):
            if k in a and not a[k].startswith("data:"):
                self.external.append(a[k])
        if tag in ("script", "link"):
            self.external.append(tag)

    def handle_endtag(self, tag):
        if tag in ("img", "br", "meta", "link"):
            return  # void elements, written self-closed
        if tag == "p":
            self._in_note = False
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()
        else:
            raise SystemExit(f"unbalanced </{tag}> (open: {self.stack[-3:]})")

    def handle_data(self, data):
        if self._in_note:
            self.notes[-1] += data


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    r = Report()
    r.feed(text)
    r.close()
    print(json.dumps({
        "doctype": text.startswith("<!DOCTYPE html>"),
        "balanced": not r.stack,
        "cards": r.cards,
        "cells": r.cells,
        "external": r.external,
        "notes": r.notes,
    }))


if __name__ == "__main__":
    main()

"""Reading feed documents (RSS, Atom, RDF, JSON Feed) into items: pure, no I/O."""

"""What people look at, for any launches: outcome tables on a terminal (rich), matplotlib
figures as inline SVG, and self-contained HTML pages (frame, verdict badges, one launch's
details).
"""

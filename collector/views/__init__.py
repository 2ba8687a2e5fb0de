"""What people read: SVG charts and the host verdicts shared by the dashboard and `osmon status`."""

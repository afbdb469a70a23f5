import math


class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y

    def distance_to(self, other):
        <|cursor|>

    def __repr__(self):
        return f"Point({self.x}, {self.y})"

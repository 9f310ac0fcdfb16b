"""What a Python team would otherwise run, each as its tutorial or documentation writes it."""
